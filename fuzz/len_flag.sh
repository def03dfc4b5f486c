# Sourced by the run scripts. libFuzzer caps inputs at 1 MiB unless -max_len says otherwise, which
# would truncate every seed above it (the float64 MNIST model is 1.4 MB) and so never reach the
# checks behind the size check: len_flag DIR... prints -max_len=<largest file> when that is over 1 MiB.
len_flag() {
    local largest
    largest=$(find "$@" -type f -printf '%s\n' 2>/dev/null | sort -n | tail -n 1)
    (( ${largest:-0} > 1048576 )) && echo "-max_len=$largest"
    return 0
}

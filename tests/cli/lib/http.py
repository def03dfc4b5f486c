#!/usr/bin/env python3
"""Raw HTTP requests for the serve tests: PORT METHOD PATH [--token T] [--ctype CT] [--body FILE]
[--length N] [--send N] [--hold S] [--header 'K: V'] [--full 1]. Prints 'STATUS BODY' (status 0:
no response). --length announces N bytes; --send sends only the first N bytes of the body, then
holds the connection S seconds (--hold) and closes it: a cut upload."""
import socket, sys, time

def main():
    port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    opts = sys.argv[4:]
    token = ctype = body_file = None
    length = send = None
    hold = 0.0
    headers = []
    full = False
    i = 0
    while i < len(opts):
        k = opts[i]
        v = opts[i + 1] if i + 1 < len(opts) else None
        if k == "--token": token = v
        elif k == "--ctype": ctype = v
        elif k == "--body": body_file = v
        elif k == "--length": length = int(v)
        elif k == "--send": send = int(v)
        elif k == "--hold": hold = float(v)
        elif k == "--header": headers.append(v)
        elif k == "--full": full = True
        i += 2
    body = open(body_file, "rb").read() if body_file else b""
    if length is None: length = len(body)
    if send is not None: body = body[:send]
    req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if token: req += f"Authorization: Bearer {token}\r\n"
    if ctype: req += f"Content-Type: {ctype}\r\n"
    if body_file or length: req += f"Content-Length: {length}\r\n"
    for h in headers: req += h + "\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        try:
            s.sendall(req.encode() + b"\r\n")
            for off in range(0, len(body), 1 << 20):
                s.sendall(body[off:off + (1 << 20)])
        except OSError:
            pass  # refused before the body was read: the response is waiting
        if send is not None:
            time.sleep(hold)
            s.close()
            print("0 cut")
            return
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            data += chunk
    except OSError as e:
        print(f"0 {e}")
        return
    finally:
        s.close()
    if not data.startswith(b"HTTP/1."):
        print("0 no response")
        return
    status = data.split(b" ", 2)[1].decode()
    text = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace")
    print(status, text if full else text[:300].replace("\n", " "))

main()

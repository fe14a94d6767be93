"""Runs a command on a pseudo-terminal, as a person at a keyboard would.

Reads one JSON object on stdin: {"argv": [...], "steps": [{"expect": "Password: ",
"send": "secret\\r"}, {"expect": "]"}]}. Each step waits (up to 10 s) until the
terminal has shown `expect`, then types `send`, if any. Prints everything the
terminal showed, echo included, so a test can see what a person would have seen.
"""
import json, os, pty, sys, time

job = json.load(sys.stdin)
pid, fd = pty.fork()
if pid == 0:
    os.execvp(job["argv"][0], job["argv"])
out = b""


def read_until(marker, limit=10):
    global out
    end = time.time() + limit
    while marker not in out and time.time() < end:
        try:
            out += os.read(fd, 1024)
        except OSError:
            break


for step in job["steps"]:
    read_until(step["expect"].encode())
    if "send" in step:
        os.write(fd, step["send"].encode())
os.waitpid(pid, 0)
sys.stdout.write(out.decode())

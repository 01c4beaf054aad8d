"""Runs a command on a pseudo-terminal and answers its prompts, for the prompt tests.

    python3 pty_driver.py PROMPT ANSWER [PROMPT ANSWER]... -- COMMAND [ARG]...

For each pair it reads the command's terminal output until PROMPT appears; a PROMPT written
`secret:TEXT` is a no-echo prompt, and the driver also waits until the command has turned echo
off, so what is typed is never echoed by the terminal itself; then it types ANSWER and a newline. It waits on the terminal's state, never
on the clock (but gives up after 60 s). At the end it prints the transcript on stdout and exits
with the command's exit code.
"""

import os
import pty
import select
import sys
import termios
import time


def main() -> int:
    args = sys.argv[1:]
    sep = args.index("--")
    pairs, command = args[:sep], args[sep + 1 :]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)
    transcript = b""
    deadline = time.monotonic() + 60

    def read_some(timeout: float) -> bool:
        nonlocal transcript
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        transcript += data
        return True

    for prompt, answer in zip(pairs[0::2], pairs[1::2]):
        secret = prompt.startswith("secret:")
        prompt = prompt.removeprefix("secret:")
        while prompt.encode() not in transcript:
            if time.monotonic() > deadline or not read_some(0.5):
                sys.stdout.write(transcript.decode(errors="replace"))
                sys.stderr.write(f"pty_driver: the prompt {prompt!r} never came\n")
                return 125
        # On Linux the master side reports the terminal's settings: wait until echo is off.
        while secret and termios.tcgetattr(fd)[3] & termios.ECHO:
            if time.monotonic() > deadline or not read_some(0.01):
                break
        os.write(fd, answer.encode() + b"\n")
    while time.monotonic() < deadline and read_some(0.5):
        pass
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())

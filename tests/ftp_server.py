"""A local FTP server for the file-pickup tests: pyftpdlib on 127.0.0.1 (a free port), in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


@contextmanager
def ftp_drop_folder(root: Path, user: str = "vigil", password: str = "secret") -> Iterator[tuple[Path, int]]:
    """Serve `root` (read-only for `user`); yield its `drop/` folder and the port."""
    (root / "drop").mkdir(parents=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), handler)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield root / "drop", server.address[1]
    finally:
        stop.set()
        thread.join(5)
        server.close_all()

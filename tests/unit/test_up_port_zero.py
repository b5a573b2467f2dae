"""``controlplane up --port 0``: the apiserver's workers each bind the port, so ``up`` picks a
free one itself, kept in ``DATA_DIR/apiserver-port`` and taken again at the next start while it
is free."""

from __future__ import annotations

import socket
from argparse import Namespace
from pathlib import Path

import pytest

from controlplane.cmd import up


def _args(tmp_path: Path, host: str = "127.0.0.1") -> Namespace:
    return Namespace(data_dir=tmp_path / "data", host=host)


@pytest.mark.parametrize("saved", ["", "not a number", "0", "70000"])
def test_a_free_port_is_chosen_and_kept(tmp_path, saved):
    args = _args(tmp_path)
    if saved:
        args.data_dir.mkdir()
        (args.data_dir / "apiserver-port").write_text(saved)
    port = up._chosen_port(args)
    assert 0 < port < 65536 and up._port_free(port, "127.0.0.1")
    assert (args.data_dir / "apiserver-port").read_text().strip() == str(port)
    assert up._chosen_port(args) == port  # the next start takes it again


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_a_saved_port_now_taken_is_replaced(tmp_path, host):
    args = _args(tmp_path, host)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        args.data_dir.mkdir()
        (args.data_dir / "apiserver-port").write_text(f"{taken}\n")
        port = up._chosen_port(args)
    assert port != taken
    assert (args.data_dir / "apiserver-port").read_text().strip() == str(port)

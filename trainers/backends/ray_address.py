"""Is there a Ray cluster at ADDR? Asked before any work, because Ray itself does not fail fast: `ray.init`
on an address where nothing listens (or where something listens that is not Ray) retries for about two
minutes before giving up (measured with Ray 2.60), and the CLI would look hung.

Two bounded probes, both without importing Ray: a TCP connect (refused / timed out: nothing is there), then
an HTTP/2 handshake with gRPC, which Ray's GCS and its client server (`ray://`) both speak (a port that
accepts connections but never answers like gRPC is not a Ray cluster). `auto`, `local` and no address are
left to Ray, which answers those at once. Used by `train` and `run` (exit 4).
"""

from __future__ import annotations

import re
import socket
import time

from ganstream.trainers.errors import InfrastructureError

PROBE_TIMEOUT_S = 5.0


class RayUnreachable(InfrastructureError):
    """ADDR names a host:port where no Ray cluster answers (exit 4)."""


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of `host:port`, `ray://host:port`, `[v6]:port`; None for anything else (`auto`, ...)."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)/?", address.strip())
    return (m.group(1), int(m.group(2))) if m else None


def check_ray_address(address: str | None, fix: str = "--ray-address", timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise RayUnreachable (one line naming ADDR and what to fix) unless a Ray cluster can answer there."""
    target = parse_address(address) if address and address not in ("auto", "local") else None
    if target is None:
        return
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as e:
        raise RayUnreachable(f"Ray cluster {address} is unreachable ({e.strerror or e}); start it or fix {fix}") from None
    if not _speaks_grpc(target, max(0.5, deadline - time.monotonic())):
        raise RayUnreachable(f"Ray cluster {address} is unreachable (the port accepts connections but does not "
                             f"answer as a Ray cluster within {timeout:g}s); start it or fix {fix}")


def _speaks_grpc(target: tuple[str, int], timeout: float) -> bool:
    import grpc

    host, port = target
    channel = grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
        return True
    except grpc.FutureTimeoutError:
        return False
    finally:
        channel.close()

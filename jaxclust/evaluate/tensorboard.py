"""TensorBoard event files of the metrics records, with no TensorFlow or tensorboard dependency.

The training loop mirrors every metrics.jsonl record into WORKDIR/tensorboard/ (one scalar per
numeric key, the epoch as the step), so `tensorboard --logdir WORKDIR` shows the curves live. On a
resume the directory is rewritten from the records kept, as metrics.jsonl is, so curves never hold
the epochs a killed run computed after its last checkpoint.

For a run made before this existed, or to rebuild the files:

    python -m jaxclust.evaluate.tensorboard WORKDIR

`read_scalars(dir)` reads the files back ({tag: [(step, value), ...]}).

Format: TFRecord framing (uint64 length, masked CRC-32C of it, the payload, masked CRC-32C of it) of
`tensorflow.Event` protocol buffers, hand-encoded: wall_time (1, double), step (2, int64),
file_version (3, string), summary (5) -> value (1) -> {tag (1, string), simple_value (2, float)}.
"""
from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path

DIRNAME = "tensorboard"
_NOT_SCALARS = {"epoch", "step"}
_GROUPS = {
    "nmi": "clustering", "acc": "clustering", "ari": "clustering", "ami": "clustering",
    "imbalance": "clustering", "kmeans_inertia": "clustering",
    "uniformity": "features",
    "lr": "train", "ema_momentum": "train",
}


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int = 0, file_version: str | None = None, scalars: dict | None = None) -> bytes:
    out = b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step)
    if file_version is not None:
        out += _length_delimited(3, file_version.encode())
    if scalars:
        values = b"".join(
            _length_delimited(1, _length_delimited(1, tag.encode()) + b"\x15" + struct.pack("<f", value))
            for tag, value in scalars.items()
        )
        out += _length_delimited(5, values)
    return out


def _frame(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", _masked_crc(header)) + payload + struct.pack("<I", _masked_crc(payload))


def tag_of(key: str) -> str:
    group = _GROUPS.get(key, "train" if key.endswith("loss") else "e_step")
    return f"{group}/{key}"


def record_scalars(record: dict) -> dict[str, float]:
    """The numeric values of a metrics record, keyed by TensorBoard tag."""
    return {
        tag_of(k): float(v) for k, v in record.items()
        if k not in _NOT_SCALARS and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


class EventWriter:
    """Appends metrics records to one event file in `logdir`."""

    def __init__(self, logdir: str | Path):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.jaxclust"
        self.path = self.logdir / name
        self._file = self.path.open("ab")
        self._file.write(_frame(_event(time.time(), file_version="brain.Event:2")))
        self._file.flush()

    @classmethod
    def rewrite(cls, logdir: str | Path, records: list[dict]) -> "EventWriter":
        """A writer on a fresh directory holding exactly `records` (older event files removed)."""
        for old in Path(logdir).glob("events.out.tfevents.*"):
            old.unlink()
        writer = cls(logdir)
        for record in records:
            writer.write(record)
        return writer

    def write(self, record: dict) -> None:
        scalars = record_scalars(record)
        if scalars:
            self._file.write(_frame(_event(time.time(), int(record["epoch"]), scalars=scalars)))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------------------------
# Reading back


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(buf: bytes):
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, value


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from every event file in `logdir`; checks every CRC."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            header = data[pos : pos + 8]
            (length,) = struct.unpack("<Q", header)
            (crc,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            payload = data[pos + 12 : pos + 12 + length]
            (payload_crc,) = struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])
            if crc != _masked_crc(header) or payload_crc != _masked_crc(payload):
                raise ValueError(f"{path}: corrupt record at byte {pos}")
            pos += 16 + length
            step, values = 0, []
            for field, value in _fields(payload):
                if field == 2:
                    step = value
                elif field == 5:
                    for _, v in _fields(value):
                        entry = dict(_fields(v))
                        values.append((entry[1].decode(), struct.unpack("<f", entry[2])[0]))
            for tag, value in values:
                out.setdefault(tag, []).append((step, value))
    return out


def rebuild(workdir: str | Path) -> Path:
    """Rewrites WORKDIR/tensorboard from WORKDIR/metrics.jsonl; returns the directory."""
    workdir = Path(workdir)
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    EventWriter.rewrite(workdir / DIRNAME, records).close()
    return workdir / DIRNAME


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m jaxclust.evaluate.tensorboard WORKDIR")
    print(f"wrote {rebuild(sys.argv[1])}; view with: tensorboard --logdir {sys.argv[1]}")

"""What decoding a payload costs with Temporal's default converter and with Exosuit's, which
resolves each dataclass's type hints once (exosuit/payload_types.py), side by side in turns.

    .venv/bin/python benchmarks/payload_decode.py [--count 5000] [--rounds 3]

Prints the CPU microseconds per decode of a decision (what every update carries) and of a
value shaped like a continued task's input (nested dataclasses: 5 steps and an audit head).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from temporalio.converter import DefaultPayloadConverter, PayloadConverter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exosuit.domain.contracts import Decision
from exosuit.payload_types import ExosuitPayloadConverter
from tests.unit.test_payload_types import A_DECISION, Carried, a_carried_value


def per_decode_us(converter: PayloadConverter, value: Any, hint: type, count: int) -> float:
    payloads = DefaultPayloadConverter().to_payloads([value])
    started = time.process_time()
    for _ in range(count):
        converter.from_payloads(payloads, [hint])
    return (time.process_time() - started) * 1e6 / count


def main(count: int, rounds: int) -> None:
    cases: list[tuple[str, Any, type]] = [
        ("decision", A_DECISION, Decision),
        ("nested: 5 steps, a head", a_carried_value(), Carried),
    ]
    converters: list[tuple[str, PayloadConverter]] = [
        ("default", DefaultPayloadConverter()),
        ("exosuit", ExosuitPayloadConverter()),
    ]
    print(f"CPU per decode, median of {rounds} rounds of {count}")
    for label, value, hint in cases:
        figures: dict[str, list[float]] = {name: [] for name, _ in converters}
        for _ in range(rounds):
            for name, converter in converters:
                figures[name].append(per_decode_us(converter, value, hint, count))
        default, ours = (statistics.median(figures[name]) for name, _ in converters)
        print(f"{label:<30} default {default:7.1f} us   exosuit {ours:7.1f} us   {default / ours:4.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    main(args.count, args.rounds)

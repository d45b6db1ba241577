"""Check an Exosuit audit export without Exosuit: python check_audit_export.py export.json"""

import hashlib
import json
import sys

export = json.load(open(sys.argv[1]))
prev, anchor = "0" * 64, export["anchor"]
for seq, event in enumerate(export["events"], start=1):
    fields = {k: event[k] for k in ("seq", "at", "actor", "action", "data")}
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256((prev + body).encode()).hexdigest()
    if event["seq"] != seq or event["prev_hash"] != prev or event["hash"] != digest:
        sys.exit(f"broken at seq {seq}")
    prev = digest
if not export["events"] or anchor is None:
    sys.exit("no events, or no anchor to hold them against")
if (len(export["events"]), prev) != (anchor["seq"], anchor["hash"]):
    sys.exit(f"the chain ends at seq {len(export['events'])}, the anchor at seq {anchor['seq']}")
print(f"chain of {anchor['seq']} events holds and ends at its anchor {anchor['hash'][:16]}…")

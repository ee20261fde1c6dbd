#!/usr/bin/env python3
"""Write a Slack export N times larger: every channel copied N times under new ids and names.

Why: the fetch-half benchmarks (scripts/bench-fetch-memory.sh, scripts/bench-vs-python.sh) need
inputs large enough to time and to show whether memory stays flat, from real message text.

    python3 scripts/scale-slack-export.py SRC DEST [N=10]
"""

import json
import os
import shutil
import sys

src, dst = sys.argv[1], sys.argv[2]
times = int(sys.argv[3]) if len(sys.argv) > 3 else 10
os.makedirs(dst)
channels = json.load(open(os.path.join(src, "channels.json")))
out = []
for k in range(times):
    for ch in channels:
        c = dict(ch, id=f"{ch['id']}X{k}", name=f"{ch['name']}-{k}")
        out.append(c)
        if os.path.isdir(os.path.join(src, ch["name"])):
            shutil.copytree(os.path.join(src, ch["name"]), os.path.join(dst, c["name"]))
json.dump(out, open(os.path.join(dst, "channels.json"), "w"))
shutil.copy(os.path.join(src, "users.json"), os.path.join(dst, "users.json"))

"""Export a prepared nmtkit data directory as SentencePiece-piece text for the peer toolkits.

    python benchmarks/export_pieces.py runs/demo/data /tmp/peer-data [--test-lines N]

Writes `{train,valid,test}.{src,tgt}` (pieces separated by spaces, the layout
`../shared/peers/run_peer.sh` reads) and `test.raw.tgt` (the detokenized reference), so the
peers train and decode on exactly the tokens nmtkit trains on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from nmtkit.data.manifest import PreparedData


def export(data_dir: Path, out: Path, test_lines: int | None = None) -> None:
    data = PreparedData.open(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in data.splits:
        shards = data.shards(split)
        limit = test_lines if split == "test" and test_lines else len(shards[0])
        for side, shard in zip(("src", "tgt"), shards, strict=True):
            sp = data.tokenizer(side).sp
            with open(out / f"{split}.{side}", "w", encoding="utf-8") as f:
                for i in range(limit):
                    f.write(" ".join(sp.id_to_piece(int(t)) for t in shard[i]) + "\n")
    refs = data.read_text("test", "tgt")
    limit = test_lines or len(refs)
    (out / "test.raw.tgt").write_text("".join(r + "\n" for r in refs[:limit]), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--test-lines", type=int, default=None)
    args = parser.parse_args()
    export(args.data_dir, args.out, args.test_lines)


if __name__ == "__main__":
    main()

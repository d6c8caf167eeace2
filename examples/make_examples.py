"""Generate the small example data the configs in configs/ point at (examples/data/).

    python examples/make_examples.py          # or: make examples

writes, in a few seconds on a CPU and with nothing downloaded:

- data/images/{circle,square}/*.png  60 tiny procedural images (RGB, grayscale and RGBA
                                      files mixed, to show the colour conversion)
- data/images.csv                     their metadata: file, shape, colour (shuffled rows)
- data/tiny_cnn.pt                    a small CNN saved as TorchScript (fixed seed)
- data/table.csv                      80 rows: id, f0..f5, label
- data/tabular.pt                     a state_dict for examples/tabular_model.py:build
- data/sentences.csv                  30 sentences on three topics: id, sentence, topic
- data/store/                         the latent store of the image config, written by
                                      `latent-audit encode configs/images-torchscript.yaml`

Then every example config runs: `latent-audit run configs/images-torchscript.yaml`, ...
(the text example needs `pip install -e ".[text]"`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent

TOPICS = {
    "cooking": ["The soup needs more salt and a little pepper.",
                "Slice the onions thinly and fry them until golden.",
                "Bake the bread for forty minutes in a hot oven.",
                "She whisked the eggs with sugar for the cake.",
                "Simmer the tomato sauce slowly for an hour.",
                "Add fresh basil just before serving the pasta.",
                "He roasted the vegetables with olive oil and garlic.",
                "Let the dough rest overnight in the fridge.",
                "The recipe calls for two cups of flour.",
                "Grill the fish for three minutes on each side."],
    "astronomy": ["The telescope captured a faint spiral galaxy.",
                  "Jupiter has dozens of moons orbiting it.",
                  "A comet's tail always points away from the Sun.",
                  "Astronomers measured the distance to a nearby star.",
                  "The Moon's craters were formed by ancient impacts.",
                  "Neutron stars are incredibly dense remnants of supernovae.",
                  "Saturn's rings are made mostly of ice.",
                  "The Milky Way contains hundreds of billions of stars.",
                  "A solar eclipse happens when the Moon blocks the Sun.",
                  "Mars appears red because of iron oxide dust."],
    "football": ["The striker scored twice in the second half.",
                 "The goalkeeper saved a penalty in the final minute.",
                 "Both teams fought for the ball in midfield.",
                 "The referee showed a red card after the tackle.",
                 "The club signed a young defender this summer.",
                 "Fans sang loudly as the match kicked off.",
                 "A late header won the cup for the home side.",
                 "The coach changed the formation at half time.",
                 "The winger crossed the ball into the box.",
                 "The league title was decided on the last day."],
}


def _images(out: Path, rng: np.random.Generator, n: int = 60) -> None:
    from PIL import Image, ImageDraw
    rows = []
    colours = {"red": (220, 40, 40), "blue": (40, 80, 220)}
    for i in range(n):
        shape = ("circle", "square")[i % 2]
        colour = ("red", "blue")[(i // 2) % 2]
        im = Image.new("RGB", (16, 16), (0, 0, 0))
        d = ImageDraw.Draw(im)
        r = int(rng.integers(3, 7))
        cx, cy = (int(v) for v in rng.integers(r, 16 - r, 2))
        box = (cx - r, cy - r, cx + r, cy + r)
        (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colours[colour])
        mode = ("RGB", "RGB", "L", "RGBA")[i % 4]          # mixed modes on purpose
        name = f"{shape}/{i:03d}.png"
        (out / "images" / shape).mkdir(parents=True, exist_ok=True)
        im.convert(mode).save(out / "images" / name)
        rows.append({"file": name, "shape": shape, "colour": colour})
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(out / "images.csv", index=False)


def _cnn(out: Path) -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    traced = torch.jit.trace(model, torch.rand(2, 3, 16, 16))
    torch.jit.save(traced, str(out / "tiny_cnn.pt"))


def _table(out: Path, rng: np.random.Generator, n: int = 80) -> None:
    import torch
    sys.path.insert(0, str(HERE))
    try:
        from tabular_model import build
    finally:
        sys.path.remove(str(HERE))
    label = rng.integers(0, 2, n)
    centres = np.array([[2, 0, 0, 1, 0, 0], [-2, 1, 0, -1, 0, 1]], dtype=float)
    x = centres[label] + rng.standard_normal((n, 6))
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(6)])
    frame.insert(0, "id", [f"row-{i:03d}" for i in range(n)])
    frame["label"] = np.where(label == 1, "churned", "stayed")
    frame.to_csv(out / "table.csv", index=False)
    torch.manual_seed(0)
    torch.save(build().state_dict(), out / "tabular.pt")


def _sentences(out: Path) -> None:
    pairs = [(topic, s) for topic, sentences in TOPICS.items() for s in sentences]
    rows = [{"id": f"s{i:02d}", "sentence": s, "topic": t} for i, (t, s) in enumerate(pairs)]
    pd.DataFrame(rows).to_csv(out / "sentences.csv", index=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE.parent,
                        help="repository root holding configs/ and examples/ (default: this "
                             "checkout)")
    parser.add_argument("--no-store", action="store_true",
                        help="skip writing the latent store example")
    args = parser.parse_args(argv)
    out = args.root / "examples" / "data"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    _images(out, rng)
    _cnn(out)
    _table(out, rng)
    _sentences(out)
    if not args.no_store:
        from audit.cli import main as cli
        code = cli(["encode", str(args.root / "configs" / "images-torchscript.yaml"),
                    "--out", str(out / "store"), "-q"])
        if code:
            return code
    print(f"example data written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Writes configs/data/people.csv, the corpus that configs/text-bias.yaml audits.

Every first name meets every occupation in every template, so in the data the name's
gender is independent of the occupation and its field: whatever association the audit
finds between them comes from the model, not from the corpus. The file is committed;
this script documents (and can regenerate) it.

    python examples/make_people_sentences.py
"""
from __future__ import annotations

import csv
from pathlib import Path

# the first names of Caliskan et al. (2017), WEAT 6, plus four more of each
MALE = ["John", "Paul", "Mike", "Kevin", "Steve", "Greg", "Jeff", "Bill",
        "James", "Robert", "David", "Tom"]
FEMALE = ["Amy", "Joan", "Lisa", "Sarah", "Diana", "Kate", "Ann", "Donna",
          "Mary", "Emma", "Susan", "Linda"]
OCCUPATIONS = {
    "science": ["physicist", "chemist", "engineer", "mathematician", "programmer",
                "astronomer"],
    "arts": ["poet", "painter", "dancer", "novelist", "musician", "sculptor"],
    "care": ["nurse", "teacher", "social worker", "midwife", "nanny", "counsellor"],
    "trades": ["carpenter", "plumber", "electrician", "mechanic", "welder", "bricklayer"],
}
TEMPLATES = ["{name} works as a {job}.", "My neighbour {name} is a {job}."]


def rows() -> list[dict[str, str]]:
    out = []
    for field, jobs in OCCUPATIONS.items():
        for job in jobs:
            for gender, names in (("male", MALE), ("female", FEMALE)):
                for name in names:
                    for t, tpl in enumerate(TEMPLATES):
                        text = tpl.format(name=name, job=job)
                        if job[0] in "aeiou":
                            text = text.replace(f" a {job}", f" an {job}")
                        out.append({"id": f"{name.lower()}-{job.replace(' ', '_')}-{t}",
                                    "sentence": text, "name": name, "gender": gender,
                                    "occupation": job, "field": field, "template": str(t)})
    return out


def main() -> None:
    path = Path(__file__).resolve().parent.parent / "configs" / "data" / "people.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = rows()
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(data[0]))
        w.writeheader()
        w.writerows(data)
    print(f"wrote {len(data)} sentences to {path}")


if __name__ == "__main__":
    main()

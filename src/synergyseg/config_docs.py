"""``config/README.md`` from ``config/schema.yaml``: one table row per config key.

The schema is what the workflow validates against, so documenting from it means the README can
never list a key the workflow refuses, or miss one it accepts. ``tests/test_packaging.py``
checks that the committed README equals what this writes. Run
``python -m synergyseg.config_docs config/schema.yaml > config/README.md`` after editing the
schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HEADER = """\
# Configuration

Two configurations come with the workflow: `config/demo.yaml` (the default: synthetic phantoms
of the three datasets, CPU, minutes) and `config/config.yaml` (the paper's full protocol on
ISIC 2018, Gleason2019 and KiTS19: `--configfile config/config.yaml`). A `--configfile`
replaces the demo rather than being merged into it. Every key is checked against
`config/schema.yaml` before any job runs: an unknown key, a wrong type or an impossible
combination stops the run with the key's path in the message.

Your own images: add a dataset with `format: custom`, `source: local` and `path:` pointing at a
CSV with the columns `image,mask,case,label` (see the README, "Data sources").

This file is generated from the schema (`python -m synergyseg.config_docs config/schema.yaml`);
edit the schema's descriptions, not this file.

| key | type | default | meaning |
|---|---|---|---|
"""


def resolve(node: dict, schema: dict) -> dict:
    """The node with a local ``$ref`` merged in (the node's own fields win)."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    merged = dict(resolve(target, schema))
    merged.update({key: value for key, value in node.items() if key != "$ref"})
    return merged


def type_of(node: dict, schema: dict) -> str:
    if "enum" in node:
        return " | ".join(f"`{value}`" for value in node["enum"])
    kind = node.get("type", "")
    kinds = kind if isinstance(kind, list) else [kind]
    words = []
    for item in kinds:
        if item == "array" and "items" in node:
            inner = type_of(resolve(node["items"], schema), schema) or "value"
            words.append(f"list of {inner}")
        elif item:
            words.append(str(item))
    text = " or ".join(words)
    bounds = [
        f"≥ {node['minimum']}" if "minimum" in node else "",
        f"> {node['exclusiveMinimum']}" if "exclusiveMinimum" in node else "",
        f"≤ {node['maximum']}" if "maximum" in node else "",
        f"< {node['exclusiveMaximum']}" if "exclusiveMaximum" in node else "",
        f"multiple of {node['multipleOf']}" if "multipleOf" in node else "",
    ]
    bounds = [bound for bound in bounds if bound]
    return f"{text} ({', '.join(bounds)})" if bounds else text


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(node: dict, schema: dict, path: str) -> list[str]:
    """Table rows of ``node`` and, depth first, of every key below it."""
    node = resolve(node, schema)
    out = []
    if path:
        default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
        out.append(
            f"| `{path}` | {cell(type_of(node, schema))} | {cell(default)} | "
            f"{cell(node.get('description', ''))} |"
        )
    for key, child in node.get("properties", {}).items():
        out.extend(rows(child, schema, f"{path}.{key}" if path else key))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        extra = resolve(extra, schema)
        name = "<dataset>" if path == "datasets" else "<name>"
        if extra.get("properties"):
            out.extend(rows(extra, schema, f"{path}.{name}"))
        else:
            out.append(
                f"| `{path}.{name}` | {cell(type_of(extra, schema))} | | "
                f"{cell(extra.get('description', 'one entry per name'))} |"
            )
    return out


def render(schema_path: str | Path) -> str:
    schema = yaml.safe_load(Path(schema_path).read_text())
    return HEADER + "\n".join(rows(schema, schema, "")) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "config/schema.yaml"))

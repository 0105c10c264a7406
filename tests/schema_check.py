#!/usr/bin/python3
"""Validates JSON documents against paracorr's schemas in api/, offline.

    /usr/bin/python3 tests/schema_check.py SCHEMA DOC [DOC...]
    /usr/bin/python3 tests/schema_check.py openapi

SCHEMA is job or report (api/<name>.schema.json). "openapi" parses
api/openapi.yaml as strict YAML (a stray comma in a flow mapping is an
error, not a silent extra key) and checks that every operation has an
operationId and responses, and that every $ref inside it resolves. Every $ref between the
schemas resolves from api/ itself: nothing is fetched. Prints one line per
error (the document, the JSON path, the message) and exits 1 when there is
any, 0 when every document is valid.
"""

import json
import os
import sys

import jsonschema

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api")


def refs(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                out.append(v)
            else:
                refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def check_openapi():
    import yaml

    with open(os.path.join(API, "openapi.yaml")) as f:
        doc = yaml.safe_load(f)
    bad = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            if not isinstance(op, dict) or "operationId" not in op or not op.get("responses"):
                print("openapi.yaml: %s %s: no operationId or responses" % (method, path))
                bad += 1
    found = []
    refs(doc, found)
    for r in found:
        node = doc
        for step in r.lstrip("#/").split("/"):
            node = node.get(step) if isinstance(node, dict) else None
        if node is None:
            print("openapi.yaml: $ref %s does not resolve" % r)
            bad += 1
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "openapi":
        check_openapi()
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    store = {}
    for name in ("job", "report"):
        with open(os.path.join(API, name + ".schema.json")) as f:
            s = json.load(f)
        store[s["$id"]] = s
    schema = next(s for s in store.values() if s["$id"].endswith("/" + sys.argv[1] + ".schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    resolver = jsonschema.RefResolver(schema["$id"], schema, store=store)
    v = jsonschema.Draft202012Validator(schema, resolver=resolver)
    bad = 0
    for path in sys.argv[2:]:
        with open(path) as f:
            doc = json.load(f)
        for e in sorted(v.iter_errors(doc), key=lambda e: [str(p) for p in e.path]):
            # a oneOf names its branch's own error, not the whole document
            e = jsonschema.exceptions.best_match([e])
            while e.context:
                e = jsonschema.exceptions.best_match(e.context)
            print("%s: /%s: %s" % (path, "/".join(str(p) for p in e.absolute_path), e.message[:300]))
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

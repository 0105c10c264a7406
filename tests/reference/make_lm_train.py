#!/usr/bin/python3
"""The training set of the LM hardening example (api/examples/lm-lstm-harden.json):
sequences of the licence texts make_lm.py trained on, encoded with its
vocabulary, as paracorr's token NPY files.

The text is the concatenation of make_lm.TRAIN_FILES (the validation file
CC0-1.0 is not in it) cut into windows of T = 32 characters at stride 32,
inputs text[s:s+32] and next-character labels text[s+1:s+33]; SEQUENCES of
them, drawn without replacement by a seeded generator and kept in text
order. Every window is full, so no label is -100 and both files fit in
uint8 ('|u1', ids 0..86): 128 KiB each.

    /usr/bin/python3 tests/reference/make_lm_train.py

writes tests/reference/fixtures/zoo/lm_train_tokens_u8.npy and
lm_train_labels_u8.npy. Nothing is trained here; it takes a second.
"""

import os

import numpy as np

import make_lm

SEQUENCES = 4096
SEED = 20261202


def main():
    train, _, chars = make_lm.make_text()
    T = make_lm.T
    starts = np.arange(0, len(train) - T - 1, T)
    rng = np.random.default_rng(SEED)
    pick = np.sort(rng.choice(len(starts), size=SEQUENCES, replace=False))
    x = np.stack([train[s:s + T] for s in starts[pick]])
    y = np.stack([train[s + 1:s + T + 1] for s in starts[pick]])
    vocab = len(chars) + 1
    assert x.max() < vocab <= 256 and y.max() < vocab and x.min() >= 0 and y.min() >= 0
    out = make_lm.OUT
    np.save(os.path.join(out, "lm_train_tokens_u8.npy"), x.astype(np.uint8))
    np.save(os.path.join(out, "lm_train_labels_u8.npy"), y.astype(np.uint8))
    print("%d of %d windows of %d characters (%d training characters, vocabulary %d) -> %s" %
          (SEQUENCES, len(starts), T, len(train), vocab, out))


if __name__ == "__main__":
    main()

"""Store-and-forward: every reading is committed to disk before it is published."""

"""Gzip JSONL archives on local disk: write (`writer`), read back (`reader`), digest (`digest`), rotate and
salvage (`rotating`). Import from the submodule; this package re-exports nothing."""

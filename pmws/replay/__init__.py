"""`pmws replay`: recorded archives served back as Polymarket's market websocket, Gamma and `/books`.

`source.py` reads the archives in receive order through `pmws.read` (replicas of a shard merged, damaged
files named), `catalog.py` (pure) turns their token metadata into Gamma objects and rebuilt books into
`book` events and `/books` summaries, `http.py` answers Gamma and CLOB, `server.py` runs the timeline and
the websocket, `load.py` builds one from paths and options.
"""

"""`pmws replay`: recorded archives served back as Polymarket's market websocket, Gamma and `/books`.

`source.py` reads the archives in receive order (the boundary to switch to `pmws.read`), `catalog.py` (pure)
turns their token metadata into Gamma objects and rebuilt books into `book` events and `/books` summaries,
`http.py` answers Gamma and CLOB, `server.py` runs the timeline and the websocket, `load.py` builds one from
paths and options.
"""

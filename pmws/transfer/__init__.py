"""Shipping closed archives off the machine: one rclone wrapper (`rclone`), the upload ledger (`ledger`),
the remote-copy check (`remote`), `pmws upload` (`upload`), `pmws verify` (`verify`) and the upload backlog
(`backlog`). Import from the submodule; this package re-exports nothing."""

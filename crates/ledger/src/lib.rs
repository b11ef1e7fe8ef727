//! laissez-ledger: placeholder until its issue lands.

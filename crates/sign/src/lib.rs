//! laissez-sign: placeholder until its issue lands.

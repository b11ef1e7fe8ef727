//! laissez-verify

//! laissez-amqp: placeholder until its issue lands.

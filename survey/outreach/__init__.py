"""Sending SMS: the outbox (exactly-once delivery to the gateway), the dispatcher loop, message
texts and the gateways. See docs/sms.md."""

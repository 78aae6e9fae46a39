"""The TWS wire protocol at server version 178: framing, message ids, encoders and request parsers."""

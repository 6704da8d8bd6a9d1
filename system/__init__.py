"""The system as a whole, seen from outside: /health/, /ready/, /metrics, /api/system/ and the
staff system strip that shows it.  Reads the other apps' models; nothing imports it but the URLs."""

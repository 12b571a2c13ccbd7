"""Online scoring: BentoML services and the blue-green cluster (slots, gateway, promotion)."""

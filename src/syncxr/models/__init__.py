"""Image and text encoders, ConVIRT and GLoRIA, zero-shot heads."""

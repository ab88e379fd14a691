"""Random streams: Philox known answers, back ends, distributions, streams in training."""

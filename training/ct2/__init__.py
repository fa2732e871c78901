"""The CT2 challenge: submissions (`genspot predict`) and pseudo-labelling rounds (`genspot pseudo-label`)."""

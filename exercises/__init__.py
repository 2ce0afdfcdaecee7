"""Your work: one module per chapter. Edit the parts marked TODO."""

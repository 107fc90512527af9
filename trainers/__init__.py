"""Models, encoders, losses and training loops: everything that turns a table into a fitted generator."""

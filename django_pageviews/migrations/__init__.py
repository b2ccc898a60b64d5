"""The migrations, from 0.2.x's own ``0001_initial`` to 1.0's schema."""

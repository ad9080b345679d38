"""Development tooling kept out of the runtime package: the demo issuer's key, stamp signing and `seed_demo`.

The production image does not contain this folder, and settings install it only with SCORER_ENV=development.
"""

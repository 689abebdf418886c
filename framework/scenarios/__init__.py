"""A guide's set-up as one typed object: what each guide step starts, in the guide's words."""

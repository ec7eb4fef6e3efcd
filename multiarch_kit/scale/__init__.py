"""Building on more than one engine: split builds merged by digest, and the engines a lesson uses."""

"""The shipped scheduler profiles (the YAML files in this folder) and their loader
(``loader``): ``controlplane scheduler`` serves every profile found here unless given
``--config``."""

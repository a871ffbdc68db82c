"""Redis hot data: key names and the epoch-fenced write script (media bytes in, refused zombies out)."""

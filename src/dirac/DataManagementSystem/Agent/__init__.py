"""Data Management agents and the Request Management operation handlers that move, register and remove files."""

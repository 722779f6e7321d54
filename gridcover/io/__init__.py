"""Files room: reading a data folder into frames, writing the output folder and workspace, output-path safety, text encodings."""

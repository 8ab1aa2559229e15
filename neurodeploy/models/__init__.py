"""Model definitions: the float NIR reference simulator."""

"""The offline path: export and vector file formats (one reader per format), embedding jobs, Ray."""

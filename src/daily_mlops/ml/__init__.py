"""Machine learning: schema, preprocessing, synthesis, the TabTransformer, training, metrics, serialisation.

Pure computation on arrays and frames; never imports the MongoDB driver. Heavy
libraries (torch, scikit-learn, SDV, pandas) load when a module here is imported.
"""

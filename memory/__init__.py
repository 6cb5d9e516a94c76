"""Memory: the Chroma pool of captioned videos and our own text embeddings."""

-- pgvector's copy of rag_chunks.embedding, created only where the server offers the extension
-- (PGlite with @electric-sql/pglite-pgvector; a PostgreSQL server with pgvector installed).
-- Elsewhere (Debian's PostgreSQL has no pgvector package) nothing is created and the node uses its
-- embedded ANN index instead (src/rag/store.ts). EXECUTE keeps the `vector` type from being parsed
-- where it does not exist. The dimension is the embedder's, so the column is unsized and each
-- embedder gets its own partial HNSW index at run time.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    BEGIN
      EXECUTE 'CREATE EXTENSION IF NOT EXISTS vector';
      EXECUTE 'CREATE TABLE IF NOT EXISTS rag_vectors (
        chunk_id bigint PRIMARY KEY REFERENCES rag_chunks(id) ON DELETE CASCADE,
        datanet_id integer NOT NULL,
        embedder text NOT NULL,
        embedding vector NOT NULL
      )';
      EXECUTE 'CREATE INDEX IF NOT EXISTS rag_vectors_datanet_idx ON rag_vectors (embedder, datanet_id)';
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pgvector is available but this role may not create it; using the embedded index';
    END;
  END IF;
END
$$;

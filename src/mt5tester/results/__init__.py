"""Results database: tables, batched recorder, queries."""

"""moto extensions: each module adds behaviour that AWS documents and moto 5.x lacks, and cites the
documentation it follows."""

"""accuinsight-rpa: reconciles the Accuinsight+ trial accounts with their records in Vault."""

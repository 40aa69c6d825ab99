"""Request Management: operations kept in the ReqDB and carried out later, retried until they succeed."""

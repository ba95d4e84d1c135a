"""MCP and LangChain over the core: the MCP server, the tool boundary, the tools' result schemas."""

"""The clickpulse Streamlit report: what is happening on the site now, and whether the pipeline is healthy."""

"""fastagi"""
